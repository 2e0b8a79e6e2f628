"""The finance report (`pssync report`): one self-contained HTML page of the portfolio's revenue waterfall,
contract balances and their rollforward, RPO by timing band, open exceptions with their age, the business
metrics and the reconciliation, as known at a cut-off. `gather` reads and measures, `render` lays out."""
