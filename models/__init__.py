"""Scorers behind one contract (Beam ModelHandler), their training, evaluation and calibration."""
