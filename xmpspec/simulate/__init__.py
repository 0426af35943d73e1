"""xmpspec.simulate"""
