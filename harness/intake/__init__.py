"""What students hand in, read grader-side: notebooks, repositories' notebooks, LMS bulk downloads."""

#: absolute path of a submission -> why it cannot be graded (e.g. its archive is a bomb); every case is an error
PROBLEMS: dict[str, str] = {}
