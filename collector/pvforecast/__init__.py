"""The PV forecast provider: fetch a site's PV power forecast, store every issue with its issue time."""
