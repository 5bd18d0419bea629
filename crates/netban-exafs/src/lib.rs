//! ExaFS RTBH sink.
