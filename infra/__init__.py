"""AWS CDK app for pssync: one construct per concern, composed by `PssyncStack`."""
