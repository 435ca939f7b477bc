"""Internals of the embedded llama.cpp backend (see extract.local): finding the model, translating bodies."""
