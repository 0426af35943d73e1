"""xmpspec.products"""
