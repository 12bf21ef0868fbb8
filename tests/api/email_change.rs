//! email_change

use crate::common::*;
