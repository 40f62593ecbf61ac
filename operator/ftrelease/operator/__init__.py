"""kopf handlers, the applier, settings and operator metrics: the only kopf importer."""
