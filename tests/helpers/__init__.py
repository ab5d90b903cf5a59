"""What the tests share and the package does not ship: fakes, local servers, free ports and crash points."""
