"""The four panes of the main window: dataset, training, attack, viewer."""
