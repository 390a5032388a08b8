import sys

from tallysim.cli import main

sys.exit(main())
