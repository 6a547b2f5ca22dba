from data.synthetic.dataset import main

raise SystemExit(main())
