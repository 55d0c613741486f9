from brewflow.cli import main

raise SystemExit(main())
