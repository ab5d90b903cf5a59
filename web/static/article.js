// Bring the first highlighted range into view and give it focus for keyboard and screen-reader users.
(function () {
  var hl = document.getElementById("hl");
  if (hl) { hl.scrollIntoView({ block: "center" }); hl.focus({ preventScroll: true }); }
})();
