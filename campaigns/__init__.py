"""Campaign automation: config, the rule engine, delivery and the run that ties them together."""
