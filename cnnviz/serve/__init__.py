"""``cnnviz serve``: a live explorer in the browser. Draw a digit (or upload an image, or pick
one of the data) and watch the model's output, a layer's maps and an attribution answer on
every stroke; click a map to see what its filter looks for. Built on Dash (``pip install
'cnnviz[serve]'``)."""
