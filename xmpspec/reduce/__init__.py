"""xmpspec.reduce"""
