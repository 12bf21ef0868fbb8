//! users

use crate::common::*;
