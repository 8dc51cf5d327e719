"""LightningRL: stored spans -> RL transitions, credit assignment, Automatic Intermediate Rewards."""
