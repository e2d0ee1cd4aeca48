"""Theory of random subspaces on quadratic landscapes (Larsen et al. 2022): sublevel sets, their
Gaussian widths and the cones whose sizes predict the threshold dimension. Not a projection kernel:
`benchmark theory` checks these predictions against measured thresholds."""
