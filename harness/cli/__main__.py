"""`python -m harness.cli`: how local workers are started."""

from harness.cli import main

main()
