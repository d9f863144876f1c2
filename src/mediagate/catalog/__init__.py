"""The catalog: models, prices, routes and plans, as data shipped with the package."""
