"""The reliability campaign (issue 9): faults, kills and an accounting pass over the whole platform."""
