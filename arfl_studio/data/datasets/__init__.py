"""Datasets: layouts, walking and scanning folders, labels, views, patient-level splits."""
