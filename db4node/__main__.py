import sys

from db4node.main import main

sys.exit(main())
