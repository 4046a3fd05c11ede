from propylon.cli import main

raise SystemExit(main())
