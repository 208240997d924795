"""What students hand in, read grader-side: notebooks, repositories' notebooks, LMS bulk downloads."""
