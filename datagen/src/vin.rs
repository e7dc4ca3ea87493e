//! Vehicle identification numbers (ISO 3779): 17 characters from `0-9` and
//! `A-Z` without `I`, `O` and `Q`. Position 9 carries the check digit of the
//! North-American scheme; European makers are not obliged to fill it, but the
//! generator always does, so a VIN from here passes the strictest validator.

/// Value of a VIN character in the check-digit sum, `None` for characters a VIN may not contain.
fn transliterate(c: u8) -> Option<u32> {
    Some(match c {
        b'0'..=b'9' => u32::from(c - b'0'),
        b'A' | b'J' => 1,
        b'B' | b'K' | b'S' => 2,
        b'C' | b'L' | b'T' => 3,
        b'D' | b'M' | b'U' => 4,
        b'E' | b'N' | b'V' => 5,
        b'F' | b'W' => 6,
        b'G' | b'P' | b'X' => 7,
        b'H' | b'Y' => 8,
        b'R' | b'Z' => 9,
        _ => return None,
    })
}

const WEIGHTS: [u32; 17] = [8, 7, 6, 5, 4, 3, 2, 10, 0, 9, 8, 7, 6, 5, 4, 3, 2];

/// The check digit (`0`-`9` or `X`) for a VIN, ignoring what stands at position 9.
/// `None` if the VIN contains a character a VIN may not contain.
pub fn vin_check_digit(vin: &[u8; 17]) -> Option<u8> {
    let mut sum = 0;
    for (c, w) in vin.iter().zip(WEIGHTS) {
        sum += transliterate(*c)? * w;
    }
    Some(match sum % 11 {
        10 => b'X',
        n => b'0' + n as u8,
    })
}

/// True for a 17-character upper-case VIN without `I`, `O`, `Q` whose check digit matches.
pub fn is_valid_vin(vin: &str) -> bool {
    let Ok(bytes) = <&[u8; 17]>::try_from(vin.as_bytes()) else {
        return false;
    };
    vin_check_digit(bytes) == Some(bytes[8])
}

/// Model-year code (position 10): 30-year cycle, letters without I, O, Q, U, Z and digits 1-9.
pub(crate) fn model_year_code(year: i32) -> u8 {
    const CODES: &[u8; 30] = b"ABCDEFGHJKLMNPRSTVWXY123456789";
    // 2010 is 'A'; the cycle repeats every 30 years.
    CODES[(year - 2010).rem_euclid(30) as usize]
}

/// Characters allowed anywhere in a VIN, for the free positions.
pub(crate) const VIN_CHARS: &[u8] = b"0123456789ABCDEFGHJKLMNPRSTUVWXYZ";

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_check_digits() {
        // Textbook example of the North-American check digit.
        assert!(is_valid_vin("1M8GDM9AXKP042788"));
        assert!(!is_valid_vin("1M8GDM9A1KP042788"));
        assert!(!is_valid_vin("1M8GDM9AXKP04278"));
        assert!(!is_valid_vin("1M8GDM9AXKPO42788"));
    }

    #[test]
    fn model_year_codes() {
        assert_eq!(model_year_code(2010), b'A');
        assert_eq!(model_year_code(2018), b'J');
        assert_eq!(model_year_code(2024), b'R');
        assert_eq!(model_year_code(2008), b'8');
        assert_eq!(model_year_code(2001), b'1');
        assert_eq!(model_year_code(2031), b'1');
    }
}
