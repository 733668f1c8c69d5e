"""Puts tests/ on sys.path, so that test modules can import its helpers (`cypher_lint`)."""

import sys
from pathlib import Path

TESTS_DIR = str(Path(__file__).resolve().parent)
if TESTS_DIR not in sys.path:
    sys.path.insert(0, TESTS_DIR)
