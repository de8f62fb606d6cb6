"""One builder per kind of output (`respread.report.page` dispatches on the artifact's declared kind)."""
