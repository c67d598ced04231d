from probeval.cli import main

raise SystemExit(main())
