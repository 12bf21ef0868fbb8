//! password

use crate::common::*;
