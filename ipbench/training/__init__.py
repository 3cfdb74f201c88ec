"""Training of every artifact ipbench ships: world models and method weights.

``loop`` holds what every training function shares (schedule, autocast,
half-precision saving, progress); ``registry`` names the trainable artifacts,
and ``manifest`` writes the record that ships with each one.
"""
