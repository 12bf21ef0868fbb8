//! account

use crate::common::*;
