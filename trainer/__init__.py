"""Builds model bundles from labelled pictures. The only package that imports TensorFlow."""
