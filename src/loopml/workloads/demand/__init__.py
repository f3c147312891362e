"""Demand forecasting: daily sales per store x item, forecast weeks ahead."""
