"""xmpspec.physics"""
