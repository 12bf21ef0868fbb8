//! verify

use crate::common::*;
