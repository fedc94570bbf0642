"""Viewer building blocks: display pyramid and registration of model-space maps on the native grid."""
