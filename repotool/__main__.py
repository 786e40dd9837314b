from repotool.cli import main

raise SystemExit(main())
