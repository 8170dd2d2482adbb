import sys

from db4router.main import main

sys.exit(main())
