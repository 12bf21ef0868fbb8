//! sessions

use crate::common::*;
