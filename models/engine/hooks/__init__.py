"""MMEngine hooks: epoch seeding, the label-set check."""
