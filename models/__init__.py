"""Model backends behind one spec string (`models.loading`), the embedded model and training."""
