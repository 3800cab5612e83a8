package astemu

const b64Alphabet = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"

// base64Encode is ast_base64encode: standard alphabet, '=' padding.
func base64Encode(s string) string {
	var out []byte
	for i := 0; i < len(s); i += 3 {
		var n uint32
		k := min(3, len(s)-i)
		for j := range 3 {
			n <<= 8
			if j < k {
				n |= uint32(s[i+j])
			}
		}
		for j := range 4 {
			if j <= k {
				out = append(out, b64Alphabet[(n>>(18-6*j))&63])
			} else {
				out = append(out, '=')
			}
		}
	}
	return string(out)
}

// base64DecodeLenient is ast_base64decode: every byte outside the alphabet
// counts as 63, decoding stops at '=', and the C string ends at a NUL.
func base64DecodeLenient(s string) string {
	var out []byte
	var acc uint32
	bits := 0
	for i := 0; i < len(s) && s[i] != '='; i++ {
		v := uint32(63)
		for j := 0; j < 64; j++ {
			if b64Alphabet[j] == s[i] {
				v = uint32(j)
				break
			}
		}
		acc = acc<<6 | v
		bits += 6
		if bits >= 8 {
			bits -= 8
			c := byte(acc >> bits)
			if c == 0 {
				break
			}
			out = append(out, c)
		}
	}
	return string(out)
}
