//! The content-addressed pool: `<base_path>/data/sha256/ab/cd/<sha256>_<filename>`.
