"""``campaign data profile``: a look at the data before segmenting it."""
