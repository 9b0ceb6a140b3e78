import sys

from mrirecon.cli import main

sys.exit(main())
