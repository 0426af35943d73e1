"""xmpspec.lines"""
