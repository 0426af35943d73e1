"""xmpspec.io"""
