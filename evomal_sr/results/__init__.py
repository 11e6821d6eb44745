"""What a search produces: the hall of fame and Pareto front, the run folder, exports and plots."""
