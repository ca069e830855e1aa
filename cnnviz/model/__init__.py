"""Models as cnnviz reads them: loading into model facts, layers, sub-models of the graph,
receptive fields, and a ``.keras`` file's layers read without Keras."""
